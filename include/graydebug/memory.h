#pragma once

namespace graydebug {

// glibc's malloc raises its mmap threshold whenever a large mapped block is freed (up to 32 MiB);
// from then on the large transient buffers of a list (page bodies of ~1.4 MB, the JSON parser's
// tape) come from the heap and stay resident after they are freed: an informer's sync of 5000
// pods left 12 MiB more behind (docs/decisions.md, issue #18). This fixes the threshold at glibc's
// initial 128 KiB, so such buffers are mapped and go back to the kernel when freed. Process-wide:
// call it once, early (the manager does).
void KeepLargeAllocationsMapped();

}  // namespace graydebug
