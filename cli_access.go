package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/tether-dev/tether/access"
)

// HashKeyCmd is `tether hash-key`: an access key in, its hash out, for the hash field
// of a team server's --access file.
type HashKeyCmd struct{}

// Help of hash-key.
func (*HashKeyCmd) Help() string {
	return "Reads one key (at least 16 characters) on stdin, or asks for it twice without echo in a\n" +
		"terminal, and prints its salted argon2id hash, a PHC string starting with $, for the\n" +
		"key's hash: in serve's --access file. The file may be public; the key may not.\n\n" +
		examples(
			"tether hash-key                  # in a terminal: type the key twice",
			"tether hash-key < key.txt        # the key alone on one line",
			"head -c 18 /dev/urandom | base64 # a random key (24 characters) to give out",
		)
}

// Run reads the key and prints its hash.
func (*HashKeyCmd) Run(env *Env) error {
	key, err := readKey(os.Stdin, env.Stderr)
	if err != nil {
		return err
	}
	h, err := access.HashKey(key)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(env.Stdout, h)
	return err
}

// readKey reads the key from in: without echo, twice, when in is a terminal (the
// prompts on prompt); else one line, its line ending trimmed.
func readKey(in *os.File, prompt io.Writer) (string, error) {
	if fd := int(in.Fd()); term.IsTerminal(fd) {
		fmt.Fprint(prompt, "Key (at least 16 characters, not shown): ")
		k1, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("reading the key: %w", err)
		}
		fmt.Fprint(prompt, "The same key again: ")
		k2, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("reading the key: %w", err)
		}
		if !bytes.Equal(k1, k2) {
			return "", errors.New("the two keys differ; run tether hash-key again")
		}
		return string(k1), nil
	}
	return keyLine(in)
}

// keyLine reads a key piped in: one line, its \n or \r\n trimmed, nothing after it.
func keyLine(in io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(in, access.MaxKeyLen+3))
	if err != nil {
		return "", fmt.Errorf("reading the key on stdin: %w", err)
	}
	if len(data) > access.MaxKeyLen+2 {
		return "", fmt.Errorf("stdin holds more than %d bytes; give the key alone on one line", access.MaxKeyLen)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	switch {
	case s == "":
		return "", errors.New("no key on stdin; run tether hash-key in a terminal to type it, or give it on stdin (tether hash-key < key.txt)")
	case strings.ContainsAny(s, "\r\n"):
		return "", errors.New("stdin has more than one line; give the key alone on one line")
	}
	return s, nil
}
