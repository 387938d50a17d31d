package scheduler

// fireQueue is a min-heap of schedules by next fire time.
type fireQueue []*entry

func (q fireQueue) Len() int           { return len(q) }
func (q fireQueue) Less(i, j int) bool { return q[i].next.Before(q[j].next) }
func (q fireQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *fireQueue) Push(x any) {
	e := x.(*entry)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *fireQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*q = old[:len(old)-1]
	return e
}
