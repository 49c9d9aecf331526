package meter

import (
	"math"
	"math/bits"

	"github.com/voicegate/voicegate/internal/store"
)

// acc is an unsigned 128-bit accumulator of tokens × price products.
type acc struct{ hi, lo uint64 }

func (a *acc) add(tokens, price int64) {
	if tokens <= 0 || price <= 0 {
		return
	}
	hi, lo := bits.Mul64(uint64(tokens), uint64(price))
	var c uint64
	a.lo, c = bits.Add64(a.lo, lo, 0)
	a.hi += hi + c
}

// div returns a / 1e6 rounded (half up when up is false, ceiling when up is
// true), saturated to MaxInt64.
func (a acc) div(up bool) int64 { return a.divBy(1_000_000, up) }

// divBy returns a / d rounded like div, saturated to MaxInt64.
func (a acc) divBy(d uint64, up bool) int64 {
	if a.hi >= d { // quotient would not fit in 64 bits
		return math.MaxInt64
	}
	q, r := bits.Div64(a.hi, a.lo, d)
	if up && r > 0 || !up && r >= d/2 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

func nonNeg(v int64) int64 { return max(v, 0) }

// Cost returns the cost of usage u on model in nano-dollars; ok is false
// when the model has no price (the cost is then 0).
//
// Cached tokens are a subset of input tokens: per modality the uncached
// input is input − cached (never below zero), charged at the input rate,
// and the cached part at the cached rate. Output tokens are charged at the
// output rates. The exact total is rounded half up to whole nano-dollars
// once, so a sum of ledger entries is within one nano-dollar per entry of
// the exact price. The audio seconds of a duration-billed transcription
// are added at the model's per-minute price (rounded half up on their own).
func (t Table) Cost(model string, u store.Usage) (nanoUSD int64, ok bool) {
	p, ok := t.Lookup(model)
	if !ok {
		return 0, false
	}
	var a acc
	a.add(nonNeg(u.InputTextTokens-u.CachedTextTokens), p.TextIn)
	a.add(min(nonNeg(u.CachedTextTokens), nonNeg(u.InputTextTokens)), p.TextCached)
	a.add(nonNeg(u.InputAudioTokens-u.CachedAudioTokens), p.AudioIn)
	a.add(min(nonNeg(u.CachedAudioTokens), nonNeg(u.InputAudioTokens)), p.AudioCached)
	a.add(nonNeg(u.InputImageTokens-u.CachedImageTokens), p.ImageIn)
	a.add(min(nonNeg(u.CachedImageTokens), nonNeg(u.InputImageTokens)), p.ImageCached)
	a.add(u.OutputTextTokens, p.TextOut)
	a.add(u.OutputAudioTokens, p.AudioOut)
	cost := a.div(false)
	if u.AudioSeconds > 0 && p.AudioPerMinute > 0 {
		var d acc
		d.add(u.AudioSeconds, p.AudioPerMinute)
		cost = satAdd(cost, d.divBy(60, false))
	}
	return cost, true
}

// satAdd adds two non-negative costs, saturating at MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// MaxCost bounds the cost of one response before it runs, for
// reserve-then-settle budgets: inputTokensEstimate tokens at the dearest
// uncached input rate plus maxOutputTokens at the dearest output rate,
// rounded up. An unknown model is priced at the dearest model of the table
// so an unpriced model never gets a free reservation.
func (t Table) MaxCost(model string, maxOutputTokens int, inputTokensEstimate int) int64 {
	p, ok := t.Lookup(model)
	if !ok {
		for _, q := range t {
			p = Price{
				TextIn: max(p.TextIn, q.TextIn), AudioIn: max(p.AudioIn, q.AudioIn), ImageIn: max(p.ImageIn, q.ImageIn),
				TextOut: max(p.TextOut, q.TextOut), AudioOut: max(p.AudioOut, q.AudioOut),
			}
		}
	}
	var a acc
	a.add(int64(inputTokensEstimate), max(p.TextIn, p.AudioIn, p.ImageIn))
	a.add(int64(maxOutputTokens), max(p.TextOut, p.AudioOut))
	return a.div(true)
}

// MaxOutputTokensFor is the inverse of MaxCost for budget clamping: the
// largest output-token allowance whose bounded cost, with the given input
// estimate, fits in budget nano-dollars (0 when not even the input fits).
func (t Table) MaxOutputTokensFor(model string, budget int64, inputTokensEstimate int) int {
	lo, hi := 0, 1<<20
	if t.MaxCost(model, 0, inputTokensEstimate) > budget {
		return 0
	}
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if t.MaxCost(model, mid, inputTokensEstimate) <= budget {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}
