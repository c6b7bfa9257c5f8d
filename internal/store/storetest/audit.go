package storetest

// auditTests cover store.AuditStore.
var auditTests = []suiteTest{}
