// Command tandem is the tandem server and its command-line client.
package main

import (
	"context"
	"os"
	_ "time/tzdata" // IANA zones even on hosts without zoneinfo

	"github.com/tandemhq/tandem/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:]))
}
