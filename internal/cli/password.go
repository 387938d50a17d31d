package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// readPassword reads a password: from a terminal without echo, prompting on stderr
// (twice when confirm), else the first line of stdin. Never from an argument.
func readPassword(in io.Reader, prompt string, confirm bool) (string, error) {
	f, isFile := in.(*os.File)
	if isFile {
		if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			read := func(p string) (string, error) {
				fmt.Fprint(os.Stderr, p)
				noEcho := *t
				noEcho.Lflag &^= unix.ECHO
				if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, &noEcho); err != nil {
					return "", err
				}
				defer func() { _ = unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t); fmt.Fprintln(os.Stderr) }()
				return readLine(f)
			}
			pw, err := read(prompt)
			if err != nil || !confirm {
				return pw, err
			}
			again, err := read("again: ")
			if err != nil {
				return "", err
			}
			if again != pw {
				return "", errors.New("the passwords differ")
			}
			return pw, nil
		}
	}
	return readLine(in)
}

func readLine(in io.Reader) (string, error) {
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// stdinOr is stdin when it is a terminal (each password read without echo), else r: a
// reader over stdin that several reads share, one line each (bufio.NewReader in
// readLine keeps r itself, and with it what r has buffered).
func stdinOr(r *bufio.Reader) io.Reader {
	if _, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS); err == nil {
		return os.Stdin
	}
	return r
}
