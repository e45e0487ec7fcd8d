// Command run-vectors runs the kit's test vectors through the package (see tests/receivers).
//
//	go run ./cmd/run-vectors VECTORS.tsv
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"example.com/callbackreceiver"
)

// header stands in for http.Header (kept out so the runner builds quickly on a cold cache).
type header map[string]string

func (h header) Get(key string) string { return h[strings.ToLower(key)] }

func run(fields []string) (string, error) {
	if fields[0] == "sig" {
		now, _ := strconv.ParseInt(fields[3], 10, 64)
		tolerance, _ := strconv.Atoi(fields[4])
		header := header{"webhook-id": fields[5], "webhook-timestamp": fields[6], "webhook-signature": fields[7]}
		body, _ := base64.StdEncoding.DecodeString(fields[8])
		keys := callbackreceiver.Keys{
			Secrets:    strings.Fields(fields[9]),
			PublicKeys: strings.Fields(fields[10]),
			Tolerance:  time.Duration(tolerance) * time.Second,
		}
		return "", callbackreceiver.Verify(body, header, keys, time.Unix(now, 0))
	}
	algorithm, scope, token := fields[3], fields[4], fields[6]
	key, _ := base64.StdEncoding.DecodeString(fields[5])
	var plain []byte
	var err error
	if scope == "values" {
		plain, err = callbackreceiver.DecryptValue(algorithm, key, token)
	} else {
		var envelope callbackreceiver.Envelope
		if err := json.Unmarshal([]byte(token), &envelope); err != nil {
			return "", err
		}
		plain, err = callbackreceiver.DecryptBody(algorithm, key, envelope)
	}
	return base64.StdEncoding.EncodeToString(plain), err
}

func main() {
	file, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer file.Close()
	scanner := bufio.NewScanner(file)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for scanner.Scan() {
		line := scanner.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		result, err := run(fields)
		switch {
		case err == nil:
			fmt.Fprintf(out, "%s\taccept\t%s\n", fields[1], result)
		case errors.Is(err, callbackreceiver.ErrVerification), errors.Is(err, callbackreceiver.ErrDecryption):
			fmt.Fprintf(out, "%s\treject\t%s\n", fields[1], err)
		default:
			fmt.Fprintf(out, "%s\terror\t%s\n", fields[1], err)
		}
	}
}
