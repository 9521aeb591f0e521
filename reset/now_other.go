//go:build !linux

package reset

import "context"

// Now refuses: wiping the upper here mounts ext4 (see WhyNowLinux).
func Now(ctx context.Context, path string, all bool) (*NowResult, error) {
	return nil, nowNeedsLinux()
}
