module graydebug.io/demo/leaky-app

go 1.22
