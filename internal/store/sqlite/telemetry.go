package sqlite

import (
	"strings"
)

// values returns "(?, …), (?, …), …": rows tuples of cols placeholders.
func values(rows, cols int) string {
	tuple := "(" + placeholders(cols) + ")"
	return strings.Repeat(tuple+", ", rows-1) + tuple
}

// placeholders returns "?, ?, …" with n question marks.
func placeholders(n int) string {
	return strings.Repeat("?, ", n-1) + "?"
}
