{{/*
Names, labels and the webhook's certificate, shared by every template.
*/}}

{{/* graydebug.name: the chart name, or nameOverride. */}}
{{- define "graydebug.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
graydebug.fullname: the prefix of every object's name. "<release>-<chart>", or the release name
alone when it already contains the chart name (release "graydebug" gives "graydebug"). Truncated
to 44 characters so that the longest suffix, "-controller-metrics", still fits in a Service name
(a 63-character DNS label).
*/}}
{{- define "graydebug.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 44 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 44 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 44 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* graydebug.chart: "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "graydebug.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* graydebug.labels: the app.kubernetes.io labels of every object. */}}
{{- define "graydebug.labels" -}}
helm.sh/chart: {{ include "graydebug.chart" . }}
app.kubernetes.io/name: {{ include "graydebug.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: graydebug
{{- end -}}

{{/*
graydebug.componentLabels: the labels of one component's objects.
Usage: include "graydebug.componentLabels" (list $ "webhook")
*/}}
{{- define "graydebug.componentLabels" -}}
{{ include "graydebug.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/*
graydebug.selectorLabels: the immutable labels a Deployment, Service or PodDisruptionBudget selects
one component's pods by. Usage: include "graydebug.selectorLabels" (list $ "webhook")
*/}}
{{- define "graydebug.selectorLabels" -}}
app.kubernetes.io/name: {{ include "graydebug.name" (index . 0) }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* graydebug.image: the graydebug image reference. */}}
{{- define "graydebug.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Object names. */}}
{{- define "graydebug.webhook.name" -}}
{{- printf "%s-webhook" (include "graydebug.fullname" .) -}}
{{- end -}}
{{- define "graydebug.controller.name" -}}
{{- printf "%s-controller" (include "graydebug.fullname" .) -}}
{{- end -}}
{{/* The Secret holding the webhook's serving certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "graydebug.webhook.tlsSecretName" -}}
{{- printf "%s-webhook-tls" (include "graydebug.fullname" .) -}}
{{- end -}}
{{/* The cert-manager Certificate of the webhook (named in cert-manager.io/inject-ca-from). */}}
{{- define "graydebug.webhook.certificateName" -}}
{{- printf "%s-webhook" (include "graydebug.fullname" .) -}}
{{- end -}}

{{/*
graydebug.webhook.serviceNames: the names the API server may use for the webhook's Service; the
API server calls <service>.<namespace>.svc. graydebug.webhook.dnsNames: those, and the host of
webhook.url when it is a name.
*/}}
{{- define "graydebug.webhook.serviceNames" -}}
{{- $svc := include "graydebug.webhook.name" . -}}
{{- $ns := .Release.Namespace -}}
{{- toYaml (list (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) (printf "%s.%s" $svc $ns) $svc) -}}
{{- end -}}
{{- define "graydebug.webhook.dnsNames" -}}
{{- $names := include "graydebug.webhook.serviceNames" . | fromYamlArray -}}
{{- $host := include "graydebug.webhook.urlHost" . -}}
{{- if and $host (not (include "graydebug.webhook.urlHostIsIP" .)) -}}
{{- $names = append $names $host -}}
{{- end -}}
{{- toYaml $names -}}
{{- end -}}

{{/*
graydebug.webhook.urlHost: the host of webhook.url without port or IPv6 brackets ("" when the
webhook is reached through its Service). graydebug.webhook.urlHostIsIP: "true" when that host is an
IP address, which goes into the certificate as an IP SAN (the API server verifies the IP).
*/}}
{{- define "graydebug.webhook.urlHost" -}}
{{- if .Values.webhook.url -}}
{{- regexReplaceAll ":[0-9]+$" (urlParse .Values.webhook.url).host "" | trimPrefix "[" | trimSuffix "]" -}}
{{- end -}}
{{- end -}}
{{- define "graydebug.webhook.urlHostIsIP" -}}
{{- $host := include "graydebug.webhook.urlHost" . -}}
{{- if or (regexMatch "^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$" $host) (contains ":" $host) -}}true{{- end -}}
{{- end -}}

{{/*
graydebug.webhook.clientConfig: the clientConfig of a webhook, without caBundle: the Service, or
webhook.url when the webhook runs outside the cluster. Usage: include ... (list $ "/mutate/pods")
*/}}
{{- define "graydebug.webhook.clientConfig" -}}
{{- $ := index . 0 -}}
{{- if $.Values.webhook.url -}}
url: {{ printf "%s%s" (trimSuffix "/" $.Values.webhook.url) (index . 1) | quote }}
{{- else -}}
service:
  name: {{ include "graydebug.webhook.name" $ }}
  namespace: {{ $.Release.Namespace }}
  path: {{ index . 1 }}
  port: 443
{{- end -}}
{{- end -}}

{{/*
graydebug.webhook.tls: the Helm-generated CA and serving certificate as YAML {caCert, cert, key},
each base64-encoded PEM. On upgrade the existing Secret is looked up and reused, so the
certificate does not change on every `helm upgrade`; `helm template` and `--dry-run` (no cluster)
generate a fresh pair. The result is kept in .Values so that the Secret and the
MutatingWebhookConfiguration, rendered from different files, see the same CA.
*/}}
{{- define "graydebug.webhook.tls" -}}
{{- $memo := "__graydebugWebhookTLS" -}}
{{- if not (hasKey .Values $memo) -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "graydebug.webhook.tlsSecretName" .) -}}
{{- $data := dict -}}
{{- if $existing -}}
{{- $data = $existing.data | default dict -}}
{{- end -}}
{{- $dnsNames := include "graydebug.webhook.dnsNames" . | fromYamlArray -}}
{{- $ips := list -}}
{{- if include "graydebug.webhook.urlHostIsIP" . -}}
{{- $ips = list (include "graydebug.webhook.urlHost" .) -}}
{{- end -}}
{{- $names := concat $dnsNames $ips | join "," -}}
{{- /* A Secret made for other names (webhook.url changed) is not reused; one without the
       annotation (made before it existed) was made for the Service names alone. */ -}}
{{- $madeFor := "" -}}
{{- if $existing -}}
{{- $madeFor = index ($existing.metadata.annotations | default dict) "graydebug.io/tls-names" | default (include "graydebug.webhook.serviceNames" . | fromYamlArray | join ",") -}}
{{- end -}}
{{- $tls := dict -}}
{{- if and (index $data "tls.crt") (index $data "tls.key") (index $data "ca.crt") (eq $madeFor $names) -}}
{{- $tls = dict "caCert" (index $data "ca.crt") "cert" (index $data "tls.crt") "key" (index $data "tls.key") -}}
{{- else -}}
{{- $ca := genCAWithKey (printf "%s-ca" (include "graydebug.fullname" .)) (int .Values.tls.caValidityDays) (genPrivateKey "ecdsa") -}}
{{- $cert := genSignedCertWithKey (first $dnsNames) $ips $dnsNames (int .Values.tls.certValidityDays) $ca (genPrivateKey "ecdsa") -}}
{{- $tls = dict "caCert" ($ca.Cert | b64enc) "cert" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc) -}}
{{- end -}}
{{- $_ := set $tls "names" $names -}}
{{- $_ := set .Values $memo $tls -}}
{{- end -}}
{{- toYaml (index .Values $memo) -}}
{{- end -}}

{{/* graydebug.podSecurityContext: the restricted Pod Security profile, non-root. */}}
{{- define "graydebug.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* graydebug.containerSecurityContext: the restricted Pod Security profile for one container. */}}
{{- define "graydebug.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Whole seconds (rounded up) of a duration such as 5s, 1m30s, 500ms or 0. */}}
{{- define "graydebug.durationSeconds" -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(ms|s|m)" (toString .) -1 -}}
{{- $n := regexFind "^[0-9]+" . | float64 -}}
{{- if hasSuffix "ms" . -}}{{- $total = addf $total (divf $n 1000) -}}
{{- else if hasSuffix "s" . -}}{{- $total = addf $total $n -}}
{{- else -}}{{- $total = addf $total (mulf $n 60) -}}
{{- end -}}
{{- end -}}
{{- ceil $total | int -}}
{{- end -}}
