// The compiled-language floor for bench/sidecar_http.ts: a minimal net/http
// server answering every path with a fixed JSON body of the given size.
// Usage: go_server PORT BODY_BYTES
package main

import (
	"net/http"
	"os"
	"strconv"
	"strings"
)

func main() {
	size, _ := strconv.Atoi(os.Args[2])
	pad := size - 10
	if pad < 0 {
		pad = 0
	}
	body := []byte(`{"pad":"` + strings.Repeat("x", pad) + `"}`)
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("content-type", "application/json")
		w.Write(body)
	})
	http.ListenAndServe("127.0.0.1:"+os.Args[1], nil)
}
