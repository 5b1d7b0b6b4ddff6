package main

// lifecycleFlags say whether launch may come back to a session of the same app.
type lifecycleFlags struct {
	New bool `name:"new" help:"Start another session even if one of the same app (the same preset and arguments, or command) runs on HOST; by default launch attaches to the newest such session."`
}
