package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// TestNird_SIGTERMFinishesAnAppendInFlight: an append whose request is in flight when nird
// gets SIGTERM is served to its end (within --shutdown-grace), acknowledged, and found after
// the restart at its acknowledged sequence; nird exits 0. The request's body is sent only
// once nird has asked for it (100 Continue) and has stopped taking connections, so the
// append is certainly in flight at the shutdown. Found on 2026-12-07 by mutation testing: serving HTTP without the grace (the
// in-flight request cut off at SIGTERM) failed no test.
func TestNird_SIGTERMFinishesAnAppendInFlight(t *testing.T) {
	data := t.TempDir()
	n := startNird(t, data)
	id, reqs := personRequests(7)
	body, err := proto.Marshal(reqs[0])
	if err != nil {
		t.Fatal(err)
	}
	// The request's head asks to be told to send its body (Expect: 100-continue): once
	// nird says so, its handler is reading the body, and the append is in flight.
	c, err := net.Dial("tcp", n.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/proto\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		nirv1connect.RegistrationServiceAppendProcedure, n.Addr, len(body))
	br := bufio.NewReader(c)
	for first := true; ; first = false {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for 100 Continue: %v", err)
		}
		if first && !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("nird answered %q before the body, want 100 Continue", line)
		}
		if line == "\r\n" {
			break
		}
	}
	if err := n.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// nird has stopped taking connections: the shutdown has begun.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		d, err := net.Dial("tcp", n.Addr)
		if err != nil {
			break
		}
		d.Close()
		if time.Now().After(deadline) {
			t.Fatal("nird still takes connections 30s after SIGTERM")
		}
	}
	if _, err := c.Write(body); err != nil {
		t.Fatalf("the request's body after SIGTERM: %v", err)
	}
	httpRes, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the append in flight at SIGTERM: %v; want it served", err)
	}
	resBody, _ := io.ReadAll(httpRes.Body)
	httpRes.Body.Close()
	if httpRes.StatusCode != http.StatusOK {
		t.Fatalf("the append in flight at SIGTERM: HTTP %d %s", httpRes.StatusCode, resBody)
	}
	var res nirv1.AppendResponse
	if err := proto.Unmarshal(resBody, &res); err != nil || len(res.GetPositions()) != 1 || res.GetPositions()[0].GetSequence() == 0 {
		t.Fatalf("the append in flight at SIGTERM answered %v (%v), want one stored position", &res, err)
	}
	select {
	case <-n.Done:
	case <-time.After(60 * time.Second):
		t.Fatal("nird did not exit within 60s of SIGTERM")
	}
	if code := n.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("nird exit code after SIGTERM = %d, want 0", code)
	}

	n = startNird(t, data)
	h, err := regClient(n).History(context.Background(), connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{NationalId: id}}))
	if err != nil {
		t.Fatalf("history after the restart: %v", err)
	}
	p := res.GetPositions()[0]
	if len(h.Msg.GetEvents()) != 1 || h.Msg.GetEvents()[0].GetEvent().GetId() != p.GetEventId() || h.Msg.GetEvents()[0].GetSequence() != p.GetSequence() {
		t.Errorf("after the restart the person's history is %v; want the acknowledged event %s at seq %d", h.Msg.GetEvents(), p.GetEventId(), p.GetSequence())
	}
}
