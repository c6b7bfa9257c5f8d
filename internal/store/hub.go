package store

// HubStore holds what the IoT Hub device features need: device twins,
// cloud-to-device message queues. (Issue 4; filled in by its implementation.)
type HubStore interface {
}
