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

// Time writes exactly what json.Marshal of its RFC 3339 string would, and
// reads escaped strings (the slow path) as well as plain ones.
func TestTimeJSONFastPaths(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 12, 1, 13, 4, 5, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC),
		time.Date(2026, 6, 30, 23, 59, 59, 999999999, time.FixedZone("", 5*3600+1800)),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	} {
		got, err := Time{tm}.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(tm.UTC().Format(time.RFC3339))
		if string(got) != string(want) {
			t.Errorf("%v: MarshalJSON %s, want %s", tm, got, want)
		}
	}
	for in, want := range map[string]string{
		`"2026-12-01T13:04:05Z"`:                   "2026-12-01T13:04:05Z",
		`"2026-12-01T13:04:05+01:00"`:              "2026-12-01T12:04:05Z",
		`"2026\u002d12-01T13:04:05Z"`:              "2026-12-01T13:04:05Z", // escaped: the slow path
		`""`:                                       "",
		`null`:                                     "",
		`"2026-12-01T13:04:05Z\"`:                  "error",
		`"2026-12-01T13:04:05Z" "x"`:               "error",
		`17`:                                       "error",
		`"`:                                        "error",
		`"2026-12-01T13:04:05.123456789Z"`:         "2026-12-01T13:04:05Z",
		"\"2026-12-01T13:04:05Z\x00\"":             "error",
		`"2026-12-01 13:04:05Z"`:                   "error",
		`"yesterday"`:                              "error",
		`"10000-01-01T00:00:00Z"`:                  "error",
		`"9999-12-31T23:59:59Z"`:                   "9999-12-31T23:59:59Z",
		`"0000-01-01T00:00:00Z"`:                   "0000-01-01T00:00:00Z",
		`"2026-12-01T13:04:05Z"` + "\t":            "2026-12-01T13:04:05Z", // JSON whitespace
		`"\u0032026-12-01T13:04:05Z"`:              "2026-12-01T13:04:05Z",
		`"2026-12-01T13:04:05Z\u0022`:              "error",
		`"2026-12-01T13:04:05-00:00"`:              "2026-12-01T13:04:05Z",
		`"2026-12-01T13:04:05+14:00"`:              "2026-11-30T23:04:05Z",
		`"2026-12-01T13:04:05Z"` + `"`:             "error",
		`"2026-12-01T13:04:05Z` + "\n" + `"`:       "error",
		`"2026-12-01T13:04:05.5Z"`:                 "2026-12-01T13:04:05Z",
		`"2026-12-01T13:04:05.000000000000000Z"`:   "2026-12-01T13:04:05Z",
		`"2026-12-01T13:04:05.0000000000000000Z"`:  "2026-12-01T13:04:05Z",
		`"2026-12-01T13:04:05.00000000000000000Z"`: "2026-12-01T13:04:05Z",
	} {
		var got Time
		err := got.UnmarshalJSON([]byte(in))
		switch {
		case want == "error":
			if err == nil {
				t.Errorf("UnmarshalJSON(%s) = %v, want an error", in, got)
			}
		case err != nil:
			t.Errorf("UnmarshalJSON(%s): %v", in, err)
		case want == "" && !got.IsZero(), want != "" && got.UTC().Truncate(time.Second).Format(time.RFC3339) != want:
			t.Errorf("UnmarshalJSON(%s) = %v, want %s", in, got, want)
		}
	}
}
