package testenv

import (
	"database/sql"
	"fmt"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" driver
)

// Cell is one value of one row of an SQLite table, as text.
type Cell struct {
	Table, Column, Value string
}

// SQLiteCells reads every row of every table of the database at path and
// returns the table names and every cell, for tests that look for what a
// store kept (only hashes, never a secret).
func SQLiteCells(t testing.TB, path string) (tables []string, cells []Cell) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	for _, tbl := range tables {
		r, err := db.Query(`SELECT * FROM "` + tbl + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := r.Columns()
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				s := fmt.Sprint(v)
				if b, ok := v.([]byte); ok {
					s = string(b)
				}
				cells = append(cells, Cell{Table: tbl, Column: cols[i], Value: s})
			}
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	return tables, cells
}
