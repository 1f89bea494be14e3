package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/glmkit/glmkit/platform/batch"
	"github.com/glmkit/glmkit/platform/files"
	"github.com/glmkit/glmkit/platform/httpapi"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/platform/store"
)

// batchFlags are glm serve's Files and Batch API settings (docs/design.md
// §12); like every serve flag, each is also a config key.
type batchFlags struct {
	maxFileBytes int64
	quotaBytes   int64
	maxLines     int
	workers      int
	perBatch     int
}

func (b *batchFlags) register(f *pflag.FlagSet) {
	f.Int64Var(&b.maxFileBytes, "max-file-bytes", files.DefaultMaxFileBytes, "largest file POST /files takes, in bytes (bigger: 413 with 1210)")
	f.Int64Var(&b.quotaBytes, "file-quota-bytes", files.DefaultQuotaBytes, "bytes of files one account may hold (more: 413 with 1210); -1 = no quota")
	f.IntVar(&b.maxLines, "batch-max-lines", files.DefaultMaxLines, "most lines a batch input file may hold")
	f.IntVar(&b.workers, "batch-workers", 2, "batch lines this server runs at once, over every batch (interactive requests keep the rest)")
	f.IntVar(&b.perBatch, "batch-concurrency", 2, "batch lines of one batch running at once, over every replica")
}

func (b *batchFlags) check() error {
	switch {
	case b.maxFileBytes < 1024:
		return fmt.Errorf("--max-file-bytes must be at least 1024, got %d", b.maxFileBytes)
	case b.quotaBytes == 0 || b.quotaBytes < -1:
		return fmt.Errorf("--file-quota-bytes must be positive, or -1 for no quota, got %d", b.quotaBytes)
	case b.maxLines < 1:
		return fmt.Errorf("--batch-max-lines must be at least 1, got %d", b.maxLines)
	case b.workers < 1:
		return fmt.Errorf("--batch-workers must be at least 1, got %d", b.workers)
	case b.perBatch < 1:
		return fmt.Errorf("--batch-concurrency must be at least 1, got %d", b.perBatch)
	}
	return nil
}

// startBatches builds the file store, the batch service and its workers
// (started by serve) and returns the API options that serve them. On
// SQLite, content lives in the directory "files" beside the database file
// (the data dir by default); on PostgreSQL in the database, so replicas
// share it without a shared filesystem.
func (a *serveApp) startBatches(calls *metered.Service, api *httpapi.Options) error {
	dir := ""
	if a.store.Dialect().Name != store.Postgres.Name {
		_, dsn := a.o.store.resolve()
		dir = filepath.Join(filepath.Dir(dsn), "files")
	}
	fs, err := files.New(files.Options{Store: a.store, Dir: dir, MaxFileBytes: a.o.batch.maxFileBytes,
		QuotaBytes: a.o.batch.quotaBytes, MaxLines: a.o.batch.maxLines, Logger: a.log})
	if err != nil {
		return err
	}
	a.runner = batch.NewRunner(batch.RunnerOptions{Store: a.store, Files: fs, Calls: calls,
		Workers: a.o.batch.workers, PerBatch: a.o.batch.perBatch, Lease: a.o.taskLease,
		Metrics: batch.NewMetrics(a.metrics.Registry), Logger: a.log})
	api.Files, api.Batches, api.BatchWaker = fs, batch.New(a.store, fs, nil), a.runner
	return nil
}
