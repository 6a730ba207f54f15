package handlers

import "testing"

func TestTabList(t *testing.T) {
	for _, c := range []struct {
		tabs []int
		this int
		want string
	}{
		{[]int{1, 2, 4}, 2, "Tab 1, Tab 2 (this one), Tab 4"},
		{[]int{1, 2, 3, 4, 5, 6, 7, 8}, 8, "Tab 1, Tab 2, Tab 3, Tab 4, Tab 5, Tab 6, Tab 7, Tab 8 (this one)"},
		{[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 10, "Tab 1, Tab 2, Tab 3, Tab 4, Tab 5, Tab 6, Tab 7, Tab 10 (this one) and 2 more"},
		{[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, "Tab 1, Tab 2 (this one), Tab 3, Tab 4, Tab 5, Tab 6, Tab 7, Tab 8 and 2 more"},
		{[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0, "Tab 1, Tab 2, Tab 3, Tab 4, Tab 5, Tab 6, Tab 7, Tab 8 and 2 more"},
	} {
		if got := tabList(c.tabs, c.this); got != c.want {
			t.Errorf("tabList(%v, %d) = %q, want %q", c.tabs, c.this, got, c.want)
		}
	}
}
