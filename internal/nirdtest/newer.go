package nirdtest

import (
	"bytes"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/pluginpb"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// FutureKindField is the Event payload field number of the kind BuildNewer adds: an event of
// it is of a kind the current build does not know. Its message, FutureKindRegistered, holds
// one string, note = 1.
const FutureKindField = 45

// BuildNewer compiles the command in package pkg from this work tree as it is, with one event
// kind added to events.proto (FutureKindField): a newer build, as the next release that adds
// a kind would be, for tests of the current build in a rolling upgrade as the older one.
// events.pb.go and events_vtproto.pb.go are generated anew with the plugins go.mod pins (as
// buf.gen.yaml runs them), in a copy of the work tree; the rules fold the new kind as any
// kind they do not handle, into nothing. Once per test binary.
func BuildNewer(tb testing.TB, pkg string) string {
	tb.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	key := pkg + "@newer"
	if bin, ok := bins[key]; ok {
		return bin
	}
	root := workTree(tb)
	src := tb.TempDir()
	copyTree := exec.Command("sh", "-c", `tar -C "$1" --exclude=./.git -cf - . | tar -x -C "$2"`, "sh", root, src)
	if out, err := copyTree.CombinedOutput(); err != nil {
		tb.Fatalf("copy the work tree: %v\n%s", err, out)
	}
	req := &pluginpb.CodeGeneratorRequest{
		FileToGenerate: []string{nirv1.File_nir_v1_events_proto.Path()},
		ProtoFile: []*descriptorpb.FileDescriptorProto{
			protodesc.ToFileDescriptorProto(timestamppb.File_google_protobuf_timestamp_proto),
			protodesc.ToFileDescriptorProto(nirv1.File_nir_v1_codes_proto),
			futureEvents(tb),
		},
	}
	generate(tb, src, req, "google.golang.org/protobuf/cmd/protoc-gen-go", "paths=source_relative")
	generate(tb, src, req, "github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto", "paths=source_relative,features=unmarshal")
	bin := filepath.Join(binDirLocked(tb), path.Base(pkg)+"-newer")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, pkg)
	build.Dir = src
	start := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s with a newer events.proto: %v\n%s", pkg, err, out)
	}
	tb.Logf("built %s with a newer events.proto in %v", pkg, time.Since(start).Round(time.Second))
	bins[key] = bin
	return bin
}

// futureEvents is events.proto's descriptor with the kind FutureKindField added.
func futureEvents(tb testing.TB) *descriptorpb.FileDescriptorProto {
	tb.Helper()
	fd := protodesc.ToFileDescriptorProto(nirv1.File_nir_v1_events_proto)
	msg := &descriptorpb.DescriptorProto{Name: proto.String("FutureKindRegistered"), Field: []*descriptorpb.FieldDescriptorProto{{
		Name: proto.String("note"), JsonName: proto.String("note"), Number: proto.Int32(1),
		Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
	}}}
	fd.MessageType = append(fd.MessageType, msg)
	i := slices.IndexFunc(fd.MessageType, func(m *descriptorpb.DescriptorProto) bool { return m.GetName() == "Event" })
	if i < 0 {
		tb.Fatal("events.proto has no message Event")
	}
	ev := fd.MessageType[i]
	oneof := slices.IndexFunc(ev.OneofDecl, func(o *descriptorpb.OneofDescriptorProto) bool { return o.GetName() == "payload" })
	if oneof < 0 || slices.ContainsFunc(ev.Field, func(f *descriptorpb.FieldDescriptorProto) bool { return f.GetNumber() == FutureKindField }) {
		tb.Fatalf("events.proto's Event has no payload oneof, or field %d is taken: choose another FutureKindField", FutureKindField)
	}
	ev.Field = append(ev.Field, &descriptorpb.FieldDescriptorProto{
		Name: proto.String("future_kind_registered"), JsonName: proto.String("futureKindRegistered"), Number: proto.Int32(FutureKindField),
		Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(),
		TypeName: proto.String("." + fd.GetPackage() + ".FutureKindRegistered"), OneofIndex: proto.Int32(int32(oneof)),
	})
	return fd
}

// generate runs the protoc plugin package plugin (with go run, in the module at dir) on req
// with parameter param, and writes the files it makes under dir/proto, as buf.gen.yaml's out.
func generate(tb testing.TB, dir string, req *pluginpb.CodeGeneratorRequest, plugin, param string) {
	tb.Helper()
	req = proto.CloneOf(req)
	req.Parameter = proto.String(param)
	in, err := proto.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("go", "run", plugin)
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("%s: %v\n%s", plugin, err, stderr.String())
	}
	res := &pluginpb.CodeGeneratorResponse{}
	if err := proto.Unmarshal(out, res); err != nil {
		tb.Fatalf("%s: %v", plugin, err)
	}
	if res.GetError() != "" || len(res.GetFile()) == 0 {
		tb.Fatalf("%s: %q, %d files", plugin, res.GetError(), len(res.GetFile()))
	}
	for _, f := range res.GetFile() {
		name := filepath.Join(dir, "proto", filepath.FromSlash(f.GetName()))
		if !strings.HasPrefix(name, filepath.Join(dir, "proto")+string(filepath.Separator)) {
			tb.Fatalf("%s made %s, outside proto/", plugin, f.GetName())
		}
		if err := os.WriteFile(name, []byte(f.GetContent()), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}
