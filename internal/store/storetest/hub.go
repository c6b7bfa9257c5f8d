package storetest

// hubTests cover store.HubStore: twins and cloud-to-device messages.
var hubTests = []suiteTest{}
