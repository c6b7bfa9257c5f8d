package storetest

// dpsTests cover store.ProvisioningStore.
var dpsTests = []suiteTest{}
