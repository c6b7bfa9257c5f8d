package sqlite

import "github.com/warden-iot/warden/internal/provision/provisionsql"

// provisionStore names the embedded provisionsql.Store apart from the
// other domain stores the engine embeds (all called Store).
type provisionStore = provisionsql.Store
