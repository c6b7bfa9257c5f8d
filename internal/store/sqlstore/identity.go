package sqlstore

// ---- Devices ----
