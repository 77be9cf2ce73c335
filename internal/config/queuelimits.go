package config

import (
	"errors"
	"fmt"
	"time"
)

// The limits of the queue section. Validation applies them to the
// document, and the serve command to its --queue-* flags, which override
// the section: one rule and one message for both. Each check returns nil
// when its value is allowed, else an error whose text follows the field's
// name ("queue.workers must be between 1 and 1024, got 0"). A zero the
// document takes as "use the default" is the caller's to exempt.

// CheckQueueWorkers checks a number of tasks run at once: 1 to 1024.
func CheckQueueWorkers(n int) error {
	if n < 1 || n > 1024 {
		return fmt.Errorf("must be between 1 and 1024, got %d", n)
	}
	return nil
}

// CheckQueueRetries checks a number of retries before a task fails to the
// dead-letter list: 0 to 100.
func CheckQueueRetries(n int) error {
	if n < 0 || n > 100 {
		return fmt.Errorf("must be between 0 and 100, got %d", n)
	}
	return nil
}

// CheckQueueDelay checks a retry delay: it must not be negative.
func CheckQueueDelay(d time.Duration) error {
	if d < 0 {
		return errors.New("must not be negative")
	}
	return nil
}

// CheckStaleThreshold checks how long a running task's worker may go
// without a heartbeat before another takes the task over: at least 1s.
func CheckStaleThreshold(d time.Duration) error {
	if d < time.Second {
		return fmt.Errorf("must be at least 1s (workers heartbeat three times per threshold), got %s", d)
	}
	return nil
}
