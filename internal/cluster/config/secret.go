package config

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// MinSecretLen is the shortest cluster secret LoadSecret accepts: 16 bytes
// (128 bits when random).
const MinSecretLen = 16

const maxSecretFile = 64 << 10

// LoadSecret reads the cluster secret from path (Settings.SecretFile). The
// file must be a regular file that neither group nor others can read, and
// hold at least MinSecretLen bytes; trailing newlines and spaces are not
// part of the secret. Make one with:
//
//	head -c 32 /dev/urandom | base64 > /etc/ocfs2/o2go.secret
//	chmod 600 /etc/ocfs2/o2go.secret
//
// and copy it to every node.
func LoadSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("cluster secret %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("cluster secret %s can be read by group or others (mode %04o); run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	if len(data) > maxSecretFile {
		return nil, fmt.Errorf("cluster secret %s is larger than 64 KiB; is it the right file?", path)
	}
	secret := bytes.TrimRight(data, " \t\r\n")
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("cluster secret %s holds %d bytes; it needs at least %d (e.g. head -c 32 /dev/urandom | base64 > %s)",
			path, len(secret), MinSecretLen, path)
	}
	return secret, nil
}
