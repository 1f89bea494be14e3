package zhipuai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
)

// FilesService calls the Files API (docs/v4.md §12): client.Files.Create,
// List, Retrieve, Content and Delete, as the Python SDK's client.files.
type FilesService struct {
	client *Client
}

// File purposes the API takes (the SDK's files.create Literal).
const (
	FilePurposeBatch      = "batch"
	FilePurposeRetrieval  = "retrieval"
	FilePurposeFineTune   = "fine-tune"
	FilePurposeVoiceClone = "voice-clone-input"
	// FilePurposeBatchOutput is the purpose of a batch's output and error
	// files, which the server writes.
	FilePurposeBatchOutput = "batch_output"
)

// FileObject is a file's record (the SDK's FileObject).
type FileObject struct {
	ID            string `json:"id"`
	Object        string `json:"object"`
	Bytes         int64  `json:"bytes"`
	CreatedAt     int64  `json:"created_at"`
	Filename      string `json:"filename"`
	Purpose       string `json:"purpose"`
	Status        string `json:"status,omitempty"`
	StatusDetails string `json:"status_details,omitempty"`
}

// ListOfFileObject is a page of files (the SDK's ListOfFileObject).
type ListOfFileObject struct {
	Object  string       `json:"object"`
	Data    []FileObject `json:"data"`
	HasMore bool         `json:"has_more"`
}

// FileDeleted answers a delete (the SDK's FileDeleted).
type FileDeleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
	Object  string `json:"object"`
}

// FileCreateParams is an upload: the content, its name and purpose.
type FileCreateParams struct {
	File     io.Reader
	Filename string
	Purpose  string
}

// FileListParams filter a listing (the SDK's files.list arguments);
// zero values are not sent.
type FileListParams struct {
	Purpose string
	Limit   int
	After   string
	Order   string // "asc" or "desc" (default: newest first)
}

// Create uploads a file as multipart form data (part "file" and field
// "purpose"), as the SDK's files.create does.
func (s *FilesService) Create(ctx context.Context, p FileCreateParams, opts ...RequestOption) (*FileObject, error) {
	if p.File == nil {
		return nil, missing("file", "is required")
	}
	if p.Purpose == "" {
		return nil, missing("purpose", "is required")
	}
	name := p.Filename
	if name == "" {
		name = "file.jsonl"
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("purpose", p.Purpose); err != nil {
		return nil, err
	}
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(fw, p.File); err != nil {
		return nil, fmt.Errorf("zhipuai: read the file to upload: %w", err)
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	cl := call{method: http.MethodPost, path: "/files", body: buf.Bytes(), contentType: mw.FormDataContentType()}
	var out FileObject
	if err := s.client.do(ctx, cl, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// List returns a page of the caller's files.
func (s *FilesService) List(ctx context.Context, p FileListParams, opts ...RequestOption) (*ListOfFileObject, error) {
	q := url.Values{}
	if p.Purpose != "" {
		q.Set("purpose", p.Purpose)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.After != "" {
		q.Set("after", p.After)
	}
	if p.Order != "" {
		q.Set("order", p.Order)
	}
	path := "/files"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out ListOfFileObject
	if err := s.client.do(ctx, call{method: http.MethodGet, path: path}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Retrieve returns one file's record.
func (s *FilesService) Retrieve(ctx context.Context, fileID string, opts ...RequestOption) (*FileObject, error) {
	if fileID == "" {
		return nil, missing("file_id", "is required")
	}
	var out FileObject
	if err := s.client.do(ctx, call{method: http.MethodGet, path: "/files/" + url.PathEscape(fileID)}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Content returns a file's bytes (a batch's output or error JSONL).
func (s *FilesService) Content(ctx context.Context, fileID string, opts ...RequestOption) ([]byte, error) {
	if fileID == "" {
		return nil, missing("file_id", "is required")
	}
	cl := call{method: http.MethodGet, path: "/files/" + url.PathEscape(fileID) + "/content"}
	opts = append([]RequestOption{WithRequestHeader("Accept", "application/binary")}, opts...)
	resp, done, err := s.client.send(ctx, cl, opts)
	if err != nil {
		return nil, err
	}
	defer done()
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxFileContent+1))
	if err != nil {
		return nil, fmt.Errorf("zhipuai: GET %s: read: %w", cl.path, err)
	}
	if len(b) > maxFileContent {
		return nil, errors.New("zhipuai: file content larger than the client reads")
	}
	return b, nil
}

// maxFileContent bounds a downloaded file (the cloud's files are ≤100 MB;
// a batch's output of 50,000 replies can be larger).
const maxFileContent = 1 << 30

// Delete deletes a file.
func (s *FilesService) Delete(ctx context.Context, fileID string, opts ...RequestOption) (*FileDeleted, error) {
	if fileID == "" {
		return nil, missing("file_id", "is required")
	}
	var out FileDeleted
	if err := s.client.do(ctx, call{method: http.MethodDelete, path: "/files/" + url.PathEscape(fileID)}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}
