module github.com/tether-dev/tether

go 1.26.0

require (
	github.com/alecthomas/kong v1.17.0
	github.com/gorilla/websocket v1.5.3
)
