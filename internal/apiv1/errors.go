package apiv1

// ErrorBody is the JSON of every error response.
type ErrorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}
