package handlers_test

import (
	"os"
	"strings"
	"testing"

	"github.com/storagescopes/app/handlers"
)

// survivalMarkdown is the README's copy of the survival table.
func survivalMarkdown() string {
	var b strings.Builder
	b.WriteString("| scope | " + strings.Join(handlers.SurvivalEvents, " | ") + " |\n|---|")
	b.WriteString(strings.Repeat("---|", len(handlers.SurvivalEvents)) + "\n")
	for _, row := range handlers.Survival {
		b.WriteString("| **" + row.Scope + "** |")
		for _, c := range row.Cells {
			if c.Survives {
				b.WriteString(" yes |")
			} else {
				b.WriteString(" no |")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// The README's copy of what survives what is the page's table, which the
// browser suite walks: no copy claims what the program does not do.
func TestTheREADMECarriesTheSurvivalTable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := "<!-- survival -->\n" + survivalMarkdown() + "<!-- /survival -->"
	if !strings.Contains(string(readme), want) {
		t.Errorf("README.md's survival table is not the program's; between its markers it should read:\n%s", want)
	}
	for _, row := range handlers.Survival {
		if len(row.Cells) != len(handlers.SurvivalEvents) {
			t.Errorf("%s has %d cells, want one per event", row.Scope, len(row.Cells))
		}
		for i, c := range row.Cells {
			if c.Event != handlers.SurvivalEvents[i] || c.Why == "" {
				t.Errorf("%s's cell %d is %q (%q), want %q with a reason", row.Scope, i, c.Event, c.Why, handlers.SurvivalEvents[i])
			}
		}
	}
}
