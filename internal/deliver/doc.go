// Package deliver sends a run's delivery records through their channels, from any node.
//
// A record is made in the transaction that ends its run (see store.Deliveries), due at
// once. Every node's Deliverer claims due records with a fresh token and an expiry,
// sends each through its channel, and records the outcome under that token:
//
//	           claim (token, until)                 2xx / 250 / written
//	pending ──────────────────────────► sending ───────────────────────────► delivered
//	   ▲                                  │  │ 410 Gone                 ───► disabled
//	   │  failure, tries left: next_at =  │  │ permanent, or no tries left ─► failed (delivery.failed)
//	   └──── now + backoff or Retry-After ┘  │
//	   └──── claim expired (claimer died or froze), or its node declared lost
//
// The node that ran the run (its holder, which keeps the outputs) is offered a record
// first; the others take it once it has been due for the handoff, or at once when the
// holder is down. Files a channel needs are read from this node's disk when it holds
// them and fetched from their holder's API otherwise.
//
// Delivery is at-least-once: a claimer that dies after sending but before recording
// leaves a claim that expires, and another node sends again. Every attempt of a record
// carries its key (store.Delivery.Key: the webhook-id, the root of the Message-ID), so
// the receiver can recognise the repetition.
package deliver
