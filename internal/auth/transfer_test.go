package auth

import (
	"bytes"
	"strings"
	"testing"
)

func TestTransfer(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	dr, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := NewSealer(key)
	if !bytes.Equal(dr.TransferKey(), again.TransferKey()) || len(dr.TransferKey()) != TransferKeySize {
		t.Fatalf("transfer keys of one secret key differ or have the wrong size: %x %x", dr.TransferKey(), again.TransferKey())
	}
	other, _ := NewSealer(bytes.Repeat([]byte{8}, 32))
	if bytes.Equal(dr.TransferKey(), other.TransferKey()) {
		t.Fatal("two secret keys gave one transfer key")
	}
	ct, err := SealTransfer(dr.TransferKey(), "DB_PASS", "hunter2")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("hunter2")) {
		t.Fatal("the transfer carries the value in clear")
	}
	if v, err := again.OpenTransfer("DB_PASS", ct); err != nil || v != "hunter2" {
		t.Fatalf("open: %q, %v", v, err)
	}
	if _, err := other.OpenTransfer("DB_PASS", ct); err == nil || !strings.Contains(err.Error(), "another site") {
		t.Fatalf("another site opened it: %v", err)
	}
	if _, err := dr.OpenTransfer("OTHER", ct); err == nil {
		t.Fatal("a transfer opened under another secret's name")
	}
	if _, err := SealTransfer([]byte{1, 2}, "x", "y"); err == nil {
		t.Fatal("a bad transfer key was taken")
	}
}
