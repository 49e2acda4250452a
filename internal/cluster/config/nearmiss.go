package config

import "strings"

// nearMiss returns the word of known that s is most likely a misspelling
// of, or "" when s is not close to any. o2cb silently ignores attributes
// and stanzas it does not know, so "heartbeat_mod = global" would quietly
// mean local heartbeat; o2go refuses such a near miss instead of warning.
// Close means, comparing without case:
//
//   - equal (Name for name: jconfig's keys are case-sensitive);
//   - at most 1 edit away from a word of 3 or 4 letters, at most 2 from a
//     longer one (an edit is an insertion, deletion, substitution or the
//     swap of two neighbours: ip_adress, heartbeat_mod, nmae); words of 1
//     or 2 letters (cluster names can be that short) only by case;
//   - or, for s of 4 or more letters, the start or end of the word
//     (ip_addr, heartbeat, mode, count).
func nearMiss(s string, known []string) string {
	if len(s) > 64 {
		return ""
	}
	ls := strings.ToLower(s)
	best, bestDist := "", 3
	for _, k := range known {
		lk := strings.ToLower(k)
		if ls == lk {
			return k
		}
		if len(ls) >= 4 && (strings.HasPrefix(lk, ls) || strings.HasSuffix(lk, ls)) {
			return k
		}
		limit := 2
		switch {
		case len(lk) <= 2:
			limit = 0
		case len(lk) <= 4:
			limit = 1
		}
		if d := editDistance(ls, lk, limit); d <= limit && d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b
// (Levenshtein plus swaps of neighbours), or limit+1 when it is larger than
// limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	// Three rows of the dynamic programme: i-2, i-1, i.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], limit+1)
}
