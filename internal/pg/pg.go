// Package pg holds what Hector's PostgreSQL users share: placeholder
// rewriting for queries written once for SQLite and PostgreSQL, and a
// LISTEN loop that finds a dead connection even when nothing is announced.
package pg

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Rebind rewrites the ? placeholders of query as PostgreSQL's $1, $2, ….
func Rebind(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Listen connects to url on a connection of its own and LISTENs on
// channel. Then it calls ready (anything announced from now on is
// delivered, so ready may read state without missing a change), and
// notify with the payload of every notification. After every 5 s without
// one it calls idle, if set, and pings the server. It returns the first
// error of any of these, or ctx's.
func Listen(ctx context.Context, url, channel string, ready func() error, notify func(payload string) error, idle func() error) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.Connect(cctx, url)
	if err == nil {
		_, err = conn.Exec(cctx, "LISTEN "+pgx.Identifier{channel}.Sanitize())
	}
	cancel()
	if err != nil {
		if conn != nil {
			conn.Close(context.Background())
		}
		return err
	}
	defer conn.Close(context.Background())
	if err := ready(); err != nil {
		return err
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if err := notify(n.Payload); err != nil {
				return err
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded):
			return err
		default: // quiet for 5 s
			if idle != nil {
				if err := idle(); err != nil {
					return err
				}
			}
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		}
	}
}
