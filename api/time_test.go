package api

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// A time whose UTC year RFC 3339 cannot write is refused both ways: written
// as "10000-01-01T..." it would be refused when read back, on every replica
// applying the log entry (issue 9, defect 7).
func TestTimeYearRange(t *testing.T) {
	late := Time{time.Date(9999, 12, 31, 23, 59, 59, 0, time.FixedZone("", -3600))}
	if _, err := json.Marshal(late); !errors.Is(err, ErrTimeRange) {
		t.Errorf("marshal of a time in year 10000 UTC: %v, want ErrTimeRange", err)
	}
	var got Time
	if err := json.Unmarshal([]byte(`"9999-12-31T23:59:59-01:00"`), &got); !errors.Is(err, ErrTimeRange) {
		t.Errorf("unmarshal of a time in year 10000 UTC: %v, want ErrTimeRange", err)
	}
	ok := Time{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)}
	b, err := json.Marshal(ok)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil || !got.Equal(ok.Time) {
		t.Errorf("round trip of the last second of year 9999: %v %v", got, err)
	}
}
