package sshcert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

const (
	// maxRevokedFile bounds the revoked keys file the connector reads: 8
	// bytes a revoked serial, so room for millions.
	maxRevokedFile = 64 << 20

	// lockSuffix names the lock file next to the revoked keys file.
	lockSuffix = ".lock"

	// lockPoll bounds the wait between two tries to take the lock another
	// process holds.
	lockPoll = 20 * time.Millisecond
)

// updateRevoked runs change on the revoked keys file under the lock and,
// if change reports a change, writes the file anew: to a temporary file in
// the same directory, synced, then renamed over the old one, so that sshd
// reads either the old list or the new one, never a part. The lock is
// flock(2) on the file's name with ".lock" appended, so that revokes from
// several connectors or processes sharing the file do not lose each
// other's serials. An error of change is returned as it is; any other is a
// file system error or wraps ErrRevokedKeysFile.
func (c *Connector) updateRevoked(ctx context.Context, change func(*krl) (bool, error)) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sem }()

	lock, err := os.OpenFile(c.revokedKeys+lockSuffix, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open the lock of the revoked keys file: %w", err)
	}
	defer lock.Close() // which releases the lock
	if err := flock(ctx, lock); err != nil {
		return fmt.Errorf("lock the revoked keys file: %w", err)
	}

	data, err := readRevoked(c.revokedKeys)
	if err != nil {
		return err
	}
	k, err := parseKRL(data, c.caBlob)
	if err != nil {
		return revokedFileError(c.revokedKeys, err)
	}
	changed, err := change(k)
	if err != nil || !changed {
		return err
	}
	k.version++
	return writeFile(c.revokedKeys, k.marshal(c.caBlob, c.now()), 0o644)
}

// revokedFileError explains why the revoked keys file at path cannot be
// updated, and what to do about it.
func revokedFileError(path string, err error) error {
	if errors.Is(err, errNotKRL) {
		return fmt.Errorf("%w: %s holds a plain list of keys, and latch revokes certificates in a key revocation list (KRL); "+
			"move the list away and turn it into one with ssh-keygen -k -f %s <the list>", ErrRevokedKeysFile, path, path)
	}
	return fmt.Errorf("%w: %s: %w; restore it, or turn it into a key revocation list with ssh-keygen -k -f %s", ErrRevokedKeysFile, path, err, path)
}

// readRevoked reads the revoked keys file; a missing file is empty.
func readRevoked(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRevokedFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRevokedFile {
		return nil, fmt.Errorf("%w: %s is longer than %d bytes", ErrRevokedKeysFile, path, maxRevokedFile)
	}
	return data, nil
}

// flock takes an exclusive flock(2) on f, waiting while another process
// holds it until ctx ends.
func flock(ctx context.Context, f *os.File) error {
	wait := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case !errors.Is(err, syscall.EWOULDBLOCK):
			return err
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
		wait = min(2*wait, lockPoll)
	}
}

// writeFile replaces the file at path with one holding data, atomically
// and durably.
func writeFile(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
