package redis

import (
	_ "embed"

	goredis "github.com/redis/go-redis/v9"
)

// The Lua scripts. go-redis runs them with EVALSHA and falls back to EVAL on
// NOSCRIPT, so a restarted Redis (empty script cache) costs one round trip.

var (
	//go:embed scripts/gcra.lua
	gcraSrc string
	//go:embed scripts/lease_acquire.lua
	leaseAcquireSrc string
	//go:embed scripts/lease_renew.lua
	leaseRenewSrc string
	//go:embed scripts/lease_count.lua
	leaseCountSrc string
	//go:embed scripts/budget_lib.lua
	budgetLibSrc string
	//go:embed scripts/budget_reserve.lua
	budgetReserveSrc string
	//go:embed scripts/budget_settle.lua
	budgetSettleSrc string
	//go:embed scripts/budget_charge.lua
	budgetChargeSrc string
	//go:embed scripts/budget_spent.lua
	budgetSpentSrc string
	//go:embed scripts/budget_session_holds.lua
	budgetSessionHoldsSrc string
	//go:embed scripts/audit_append.lua
	auditAppendSrc string
	//go:embed scripts/audit_prune.lua
	auditPruneSrc string
	//go:embed scripts/revocation_publish.lua
	revocationPublishSrc string
	//go:embed scripts/user_revoke.lua
	userRevokeSrc string
)

// Scripts are immutable once built: sharing them between stores is safe.
var (
	gcraScript               = goredis.NewScript(gcraSrc)
	leaseAcquireScript       = goredis.NewScript(leaseAcquireSrc)
	leaseRenewScript         = goredis.NewScript(leaseRenewSrc)
	leaseCountScript         = goredis.NewScript(leaseCountSrc)
	budgetReserveScript      = goredis.NewScript(budgetLibSrc + "\n" + budgetReserveSrc)
	budgetSettleScript       = goredis.NewScript(budgetLibSrc + "\n" + budgetSettleSrc)
	budgetChargeScript       = goredis.NewScript(budgetLibSrc + "\n" + budgetChargeSrc)
	budgetSpentScript        = goredis.NewScript(budgetLibSrc + "\n" + budgetSpentSrc)
	budgetSessionHoldsScript = goredis.NewScript(budgetLibSrc + "\n" + budgetSessionHoldsSrc)
	auditAppendScript        = goredis.NewScript(auditAppendSrc)
	auditPruneScript         = goredis.NewScript(auditPruneSrc)
	revocationPublishScript  = goredis.NewScript(revocationPublishSrc)
	userRevokeScript         = goredis.NewScript(userRevokeSrc)
)
