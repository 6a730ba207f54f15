//go:build !unix

package main

import "errors"

// canRestartInPlace says the demo buttons can start the program again in
// place: not here (there is no exec that keeps the process), so they are
// off whatever -demo-controls says, and the log says so.
const canRestartInPlace = false

func execSelf([]string) error {
	return errors.New("restart: this system cannot start a program again in place")
}
