package apiserver

import (
	"context"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/store"
)

func testMembers() []gossip.Member {
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return []gossip.Member{
		{Name: "b", Addr: "10.0.0.2", Port: 7946, State: gossip.Dead, Since: since,
			Meta: gossip.Meta{APIAddr: "10.0.0.2:7070", RaftAddr: "10.0.0.2:7071", Zone: "z2", Role: gossip.RoleNonvoter, ClusterID: "c1"}},
		{Name: "a", Addr: "10.0.0.1", Port: 7946, State: gossip.Alive, Since: since,
			Meta: gossip.Meta{APIAddr: "10.0.0.1:7070", RaftAddr: "10.0.0.1:7071", Zone: "z1", Role: gossip.RoleVoter, ClusterID: "c1", Version: "v1", Leaving: true}},
		{Name: "c", Addr: "::1", Port: 7946, State: gossip.Left, MetaErr: "not a shoal agent"},
	}
}

func TestMembersEndpoint(t *testing.T) {
	e := newEnv(t, func(_ *store.Config, c *ServerConfig) {
		c.Members = func() any { return MembersView(testMembers()) }
	})
	ms, err := api.NewClient(e.ts.URL).Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	want := []api.MemberInfo{
		{Name: "a", Address: "10.0.0.1:7946", APIAddr: "10.0.0.1:7070", RaftAddr: "10.0.0.1:7071", Zone: "z1", Status: "alive",
			Role: "voter", ClusterID: "c1", Version: "v1", Leaving: true, Since: since},
		{Name: "b", Address: "10.0.0.2:7946", APIAddr: "10.0.0.2:7070", RaftAddr: "10.0.0.2:7071", Zone: "z2", Status: "dead",
			Role: "nonvoter", ClusterID: "c1", Since: since},
		{Name: "c", Address: "[::1]:7946", Status: "left", MetaError: "not a shoal agent"},
	}
	if !reflect.DeepEqual(ms, want) {
		t.Fatalf("got  %+v\nwant %+v", ms, want)
	}
	mustCode(t, e.post("/v1/cluster/members", "{}"), http.StatusMethodNotAllowed).status(t)
}

func TestMembersEndpointUnavailable(t *testing.T) {
	e := newEnv(t)
	st := mustCode(t, e.get("/v1/cluster/members"), http.StatusNotFound).status(t)
	if st.Reason != api.ReasonNotFound {
		t.Errorf("Status %+v", st)
	}
	if _, err := api.NewClient(e.ts.URL).Members(context.Background()); !api.IsNotFound(err) {
		t.Errorf("client: %v, want NotFound", err)
	}
}

func TestMembersViewEmpty(t *testing.T) {
	v := MembersView(nil).(MembersResponse)
	if v.Members == nil || len(v.Members) != 0 {
		t.Fatalf("%+v: want an empty, non-nil list (JSON [])", v)
	}
}
