package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/tandemhq/tandem/internal/client"
)

// A client is given every node of the cluster: any of them answers (each forwards what
// only another can do). Here the first address is down and the second answers.
func ExampleClient_Status() {
	down := deadAddress()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"primary": "a", "epoch": 7, "nodes": [{"id": "a", "mode": "primary"}, {"id": "b", "mode": "standby"}]}`)
	}))
	defer up.Close()

	c := client.NewConfig(client.Config{Servers: []string{down, up.URL}, Token: "tdm_example"})
	st, err := c.Status(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("primary %s at epoch %d; %d nodes\n", st.Primary, st.Epoch, len(st.Nodes))
	// Output: primary a at epoch 7; 2 nodes
}

// An error the server gives names the field to blame, as the API does.
func ExampleError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error": "job sales: schedule[0]: \"61 * * * *\": minute 61 is out of range 0-59", "field": "schedule[0]"}`)
	}))
	defer srv.Close()

	_, err := client.New([]string{srv.URL}).JobApply(context.Background(), []byte("name = \"sales\"\n"), "toml")
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Field)
	}
	// Output: 400 schedule[0]
}

// deadAddress is an address nothing listens on.
func deadAddress() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}
