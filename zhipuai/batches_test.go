package zhipuai

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"
)

// TestBatchWireShapes: the request body has the keys the Python SDK's
// batches.create sends, and a Batch object with every field the SDK's
// Batch model names decodes (docs/v4.md §12).
func TestBatchWireShapes(t *testing.T) {
	yes := true
	b, _ := json.Marshal(BatchCreateParams{InputFileID: "f", Endpoint: BatchEndpointChat, CompletionWindow: "24h",
		Metadata: map[string]string{"k": "v"}, AutoDeleteInputFile: &yes})
	var keys map[string]any
	_ = json.Unmarshal(b, &keys)
	var got []string
	for k := range keys {
		got = append(got, k)
	}
	sort.Strings(got)
	if want := []string{"auto_delete_input_file", "completion_window", "endpoint", "input_file_id", "metadata"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("create body keys: got %v, want %v", got, want)
	}
	in := `{"id":"batch_1","object":"batch","endpoint":"/v1/chat/completions","input_file_id":"f","completion_window":"24h",
		"status":"completed","created_at":1,"output_file_id":"o","error_file_id":null,"errors":{"object":"list","data":[{"code":"1214","line":3,"message":"m","param":null}]},
		"in_progress_at":2,"expires_at":3,"finalizing_at":4,"completed_at":5,"failed_at":null,"expired_at":null,"cancelling_at":null,"cancelled_at":null,
		"request_counts":{"total":3,"completed":2,"failed":1},"metadata":{"description":"x"}}`
	var batch Batch
	if err := json.Unmarshal([]byte(in), &batch); err != nil {
		t.Fatal(err)
	}
	if !batch.Done() || *batch.OutputFileID != "o" || batch.ErrorFileID != nil || *batch.Errors.Data[0].Line != 3 ||
		*batch.CompletedAt != 5 || batch.RequestCounts.Failed != 1 || batch.Metadata["description"] != "x" {
		t.Fatalf("decoded: got %+v", batch)
	}
	back, _ := json.Marshal(batch)
	var a, c map[string]any
	_ = json.Unmarshal([]byte(in), &a)
	_ = json.Unmarshal(back, &c)
	if !reflect.DeepEqual(a, c) {
		t.Fatalf("round trip:\ngot  %s\nwant %s", back, in)
	}
}
