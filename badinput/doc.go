// Package badinput holds the bad-input suite: rfs run as a user would run it
// (the real binary, in a scratch directory), fed hostile or careless input,
// one table per class of mistake. Each case asserts the exit status, a
// message that names the problem, no panic, no hang (a deadline per case),
// inputs byte-identical afterwards and no temp files left behind.
//
// The package has no code outside its tests.
package badinput
