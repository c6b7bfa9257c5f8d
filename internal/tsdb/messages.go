package tsdb

import (
	"context"
	"time"

	"github.com/warden-iot/warden/internal/telemetry"
)

// RecentMessage is a message still in a device's head, with its properties.
type RecentMessage struct {
	MessageID  string
	ReceivedAt time.Time
	System     map[string]string
	App        map[string]string
	Points     []telemetry.Point
}

// RecentMessages returns up to limit of a device's newest messages that are
// still in its head, newest first, with their properties. The sealer leaves
// the newest SealRows messages of the last SealAge there (240 and two hours
// by default), so at least those are listed; sealing keeps the points, not
// the per-message properties. The caller checks that the device belongs to
// the tenant.
func (e *Engine) RecentMessages(ctx context.Context, deviceID string, limit int) ([]RecentMessage, error) {
	head, err := e.store.HeadRecords(ctx, deviceID)
	if err != nil {
		return nil, err
	}
	out := []RecentMessage{}
	for i := len(head) - 1; i >= 0 && len(out) < limit; i-- {
		r := head[i]
		h, err := e.openHeadMessage(ctx, r)
		if err != nil {
			return nil, err
		}
		m := RecentMessage{MessageID: r.MessageID, ReceivedAt: r.ReceivedAt, System: h.system, App: h.app}
		for _, p := range h.points {
			m.Points = append(m.Points, telemetry.Point{Metric: p.metric, TS: time.UnixMilli(p.ts).UTC(), Value: p.v})
		}
		out = append(out, m)
	}
	return out, nil
}
