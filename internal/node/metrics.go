package node

import (
	"context"
	"net/http"

	"github.com/tandemhq/tandem/internal/metrics"
)

// clusterGauges reads the cluster's state for a scrape of /metrics: three reads of
// indexed rows (nodes, the queue's index, the index of outputs needing copies).
func (n *Node) clusterGauges(ctx context.Context) (metrics.Cluster, error) {
	nodes, err := n.store.NodeList(ctx)
	if err != nil {
		return metrics.Cluster{}, err
	}
	q, err := n.store.RunQueueStats(ctx)
	if err != nil {
		return metrics.Cluster{}, err
	}
	pending, err := n.store.OutputPendingCount(ctx)
	if err != nil {
		return metrics.Cluster{}, err
	}
	c := metrics.Cluster{Nodes: map[string]int{}, Queued: q.Queued, OldestQueued: q.Oldest, Now: q.Now, Underreplicated: pending}
	for _, nd := range nodes {
		c.Nodes[nd.Mode]++
	}
	return c, nil
}

// MetricsHandler serves this node's metrics (GET /metrics, viewer role).
func (n *Node) MetricsHandler() http.Handler { return n.metrics.Handler() }
