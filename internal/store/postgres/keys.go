package postgres

import "github.com/warden-iot/warden/internal/keyring/keyringsql"

// keyStore names the embedded keyringsql.Store apart from the other domain
// stores the engine embeds (all called Store).
type keyStore = keyringsql.Store
