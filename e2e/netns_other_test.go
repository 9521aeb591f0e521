//go:build !linux

package e2e

import "testing"

// inPrivateNet skips the test: network namespaces are Linux's.
func inPrivateNet(t *testing.T) bool {
	t.Helper()
	t.Skip("a private network namespace needs Linux")
	return false
}
