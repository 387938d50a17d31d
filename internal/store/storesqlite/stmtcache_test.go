package storesqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

func openCached(t *testing.T) *sql.DB {
	t.Helper()
	c, err := newConnector("file:" + filepath.Join(t.TempDir(), "c.db") + "?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1) // one connection: every call meets the same cache
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// cached returns the statements the pool's one connection keeps prepared.
func cached(t *testing.T, db *sql.DB) map[string]*cachedStmt {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var m map[string]*cachedStmt
	if err := conn.Raw(func(dc any) error { m = dc.(*cachingConn).stmts; return nil }); err != nil {
		t.Fatal(err)
	}
	return m
}

// A statement run again is the prepared one, not compiled anew.
func TestStatementsStayPrepared(t *testing.T) {
	db := openCached(t)
	const ins = `INSERT INTO t (v) VALUES (?)`
	for i := range 3 {
		if _, err := db.Exec(ins, i); err != nil {
			t.Fatal(err)
		}
	}
	first := cached(t, db)[ins]
	if first == nil {
		t.Fatalf("the insert is not kept prepared: %v", cached(t, db))
	}
	if _, err := db.Exec(ins, 9); err != nil {
		t.Fatal(err)
	}
	if again := cached(t, db)[ins]; again != first {
		t.Fatal("the insert was prepared again")
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("count = %d, %v; want 4", n, err)
	}
}

// A query run again while its own rows are still open (in one transaction) gets a
// statement of its own: the open rows are not reset under the loop.
func TestNestedSameQuery(t *testing.T) {
	db := openCached(t)
	for i := range 5 {
		if _, err := db.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	const q = `SELECT id FROM t WHERE id >= ? ORDER BY id`
	outer, err := tx.Query(q, 1)
	if err != nil {
		t.Fatal(err)
	}
	var seen, inner int
	for outer.Next() {
		var id int
		if err := outer.Scan(&id); err != nil {
			t.Fatal(err)
		}
		seen++
		rows, err := tx.Query(q, id)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			inner++
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	outer.Close()
	if seen != 5 || inner != 5+4+3+2+1 {
		t.Fatalf("outer rows %d, inner rows %d; want 5 and 15", seen, inner)
	}
}

// A failed statement (a constraint) leaves its prepared form usable.
func TestFailedStatementReusable(t *testing.T) {
	db := openCached(t)
	const ins = `INSERT INTO t (id, v) VALUES (?, ?)`
	if _, err := db.Exec(ins, 1, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ins, 1, "b"); err == nil {
		t.Fatal("a duplicate key was accepted")
	}
	if _, err := db.Exec(ins, 2, "c"); err != nil {
		t.Fatalf("the statement is unusable after a failure: %v", err)
	}
}
