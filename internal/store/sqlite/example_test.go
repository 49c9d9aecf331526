package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/store/sqlite"
)

// A response reserves budget before it starts and settles what it cost.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "voicegate")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := sqlite.Open(ctx, filepath.Join(dir, "voicegate.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	accounts := []store.BudgetAccount{
		{Key: "session:vgs_1", LimitNano: 2_000_000_000}, // $2
		{Key: "user:day:alice", LimitNano: 500_000_000},  // $0.50
	}
	r, err := s.Reserve(ctx, store.Reservation{ID: "vgs_1:1", Accounts: accounts, Want: 800_000_000, Min: 10_000_000})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("granted", r.Granted, "remaining", r.Remaining)

	if err := s.Settle(ctx, "vgs_1:1", 120_000_000); err != nil {
		log.Fatal(err)
	}
	spent, reserved, err := s.Spent(ctx, "user:day:alice")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("spent", spent, "reserved", reserved)
	// Output:
	// granted 500000000 remaining 0
	// spent 120000000 reserved 0
}
