package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeyEnv names the environment variable holding the master key: 32
// bytes as 64 hex characters or as standard base64.
const MasterKeyEnv = "GLMKIT_MASTER_KEY"

// MasterKeyFile is the file in the data directory that holds the master key
// when the environment does not; it is created 0600 on first start.
const MasterKeyFile = "master.key"

// LoadMasterKey returns the key that seals API-key secrets at rest: from
// GLMKIT_MASTER_KEY when set, else from dataDir/master.key, which is created
// (random, mode 0600) when missing. A key file readable by group or others
// is refused: HS256 needs the plaintext secrets on the server, so this file
// is as sensitive as every key it protects (docs/design.md §3 "Keys").
func LoadMasterKey(getenv func(string) string, dataDir string) ([]byte, error) {
	if v := strings.TrimSpace(getenv(MasterKeyEnv)); v != "" {
		k, err := parseMasterKey(v)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", MasterKeyEnv, err)
		}
		return k, nil
	}
	path := filepath.Join(dataDir, MasterKeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := CheckPrivate(path); err != nil {
			return nil, fmt.Errorf("store: master key: %w", err)
		}
		k, err := parseMasterKey(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("store: master key file %s: %w", path, err)
		}
		return k, nil
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("store: master key: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("store: data dir: %w", err)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("store: master key: %w", err)
	}
	// O_EXCL: when two processes start at once, one creates the file and
	// the other reads the winner's key instead of overwriting it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadMasterKey(func(string) string { return "" }, dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("store: create master key: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: write master key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: write master key: %w", err)
	}
	return k, nil
}

func parseMasterKey(s string) ([]byte, error) {
	if k, err := hex.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	return nil, errors.New("want 32 bytes as 64 hex characters or base64")
}

// sealer encrypts key secrets with AES-256-GCM.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, errors.New("store: master key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store: master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("store: master key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// seal returns base64(nonce || ciphertext). The key id is the additional
// data, so a sealed secret copied onto another key's row does not open.
func (s *sealer) seal(plain, keyID string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("store: seal: %w", err)
	}
	out := s.aead.Seal(nonce, nonce, []byte(plain), []byte(keyID))
	return base64.StdEncoding.EncodeToString(out), nil
}

func (s *sealer) open(sealed, keyID string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", errors.New("store: sealed secret is corrupt")
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(keyID))
	if err != nil {
		return "", errors.New("store: cannot open key secret (wrong master key?)")
	}
	return string(plain), nil
}
