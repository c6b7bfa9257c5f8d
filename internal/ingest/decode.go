package ingest

import (
	"fmt"
	"strings"
	"time"

	"github.com/warden-iot/warden/internal/telemetry"
)

// Decode reads a message as an adapter handed it over: it checks its
// content type and encoding and decodes its payload (ParsePayload) into
// points, stamping those without a time of their own with the device's
// creation time, or else the received time. now is the server's clock. A
// message id the payload gives is the message's when the adapter found
// none. The decoded message holds neither Payload nor Invalid. On error
// the returned message still carries the message id, if one could be
// found; a message the adapter marked Invalid fails with that reason.
func Decode(m telemetry.Message, now time.Time) (telemetry.Message, error) {
	msg := m
	msg.Payload, msg.Invalid, msg.Points = nil, nil, nil
	if m.Invalid != nil {
		msg.MessageID = ""
		return msg, m.Invalid
	}
	if err := checkContent(m.ContentType, m.ContentEncoding); err != nil {
		return msg, err
	}
	msgTime := m.ReceivedAt
	if !m.CreatedAt.IsZero() {
		msgTime = m.CreatedAt
	}
	payload, err := ParsePayload(m.Payload, msgTime, now)
	if msg.MessageID == "" {
		msg.MessageID = payload.MessageID
	}
	if err != nil {
		return msg, err
	}
	msg.Points = payload.Points
	return msg, nil
}

// checkContent refuses content types and encodings Warden cannot read.
func checkContent(contentType, contentEncoding string) error {
	if ct := strings.ToLower(strings.TrimSpace(contentType)); ct != "" {
		mediaType, params, _ := strings.Cut(ct, ";")
		mediaType = strings.TrimSpace(mediaType)
		if mediaType != "application/json" && !strings.HasSuffix(mediaType, "+json") {
			return fmt.Errorf("content type %q is not JSON", contentType)
		}
		for param := range strings.SplitSeq(params, ";") {
			if cs, ok := strings.CutPrefix(strings.TrimSpace(param), "charset="); ok && !isUTF8(cs) {
				return fmt.Errorf("charset %q is not supported (only utf-8)", cs)
			}
		}
	}
	if ce := contentEncoding; ce != "" && !isUTF8(ce) {
		return fmt.Errorf("content encoding %q is not supported (only utf-8)", ce)
	}
	return nil
}

func isUTF8(s string) bool {
	s = strings.ToLower(strings.Trim(strings.TrimSpace(s), `"`))
	return s == "utf-8" || s == "utf8"
}
