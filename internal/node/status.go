package node

import (
	"context"

	"github.com/tandemhq/tandem/internal/api"
)

// Status implements api.Backend: the server-status table (cluster owns it).
func (n *Node) Status(ctx context.Context) (api.Status, error) {
	n.mu.Lock()
	slots := 0
	if n.slots != nil {
		slots = n.slots.count
	}
	n.mu.Unlock()
	return n.members.Status(ctx, slots)
}
