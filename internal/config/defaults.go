package config

// applyDefaults fills absent values with the Default* constants. It runs
// only on a valid config (validation must see what was written, not the
// defaults) and writes into c's maps and slices in place, so c must not
// share them with a cached parse: the Parser's assemble copies every map
// it takes from its cache, and the auth slices are copied (authDefaults).
func applyDefaults(c *Config) {
	if c.Version == "" {
		c.Version = "1"
	}
	for name, l := range c.LLMs {
		if l.Timeout == 0 {
			l.Timeout = Duration(DefaultLLMTimeout)
		}
		if l.MaxRetries == nil {
			r := DefaultLLMRetries
			l.MaxRetries = &r
		}
		if l.Provider == "anthropic" && l.MaxTokens == 0 {
			l.MaxTokens = 4096
		}
		c.LLMs[name] = l
	}
	for name, a := range c.Agents {
		if a.MaxIterations == 0 {
			a.MaxIterations = DefaultMaxIterations
			c.Agents[name] = a
		}
	}
	for name, t := range c.Tools {
		if t.Timeout == 0 {
			t.Timeout = Duration(DefaultToolTimeout)
			if t.Type == "agent" {
				t.Timeout = Duration(DefaultDelegateTimeout)
			}
		}
		if t.MaxOutputBytes == 0 {
			t.MaxOutputBytes = DefaultToolOutputBytes
		}
		if t.Type == "http" && t.Method == "" {
			t.Method = "GET"
		}
		if t.Type == "mcp" && t.URL != "" && t.Transport == "" {
			t.Transport = "streamable"
		}
		if t.Type == "http" && t.FollowRedirects == "" {
			t.FollowRedirects = "same_origin"
		}
		c.Tools[name] = t
	}
	if c.Server.Host == "" {
		c.Server.Host = DefaultHost
	}
	if c.Queue.Workers == 0 {
		c.Queue.Workers = DefaultQueueWorkers
	}
	if c.Queue.MaxRetries == nil {
		r := DefaultQueueRetries
		c.Queue.MaxRetries = &r
	}
	if c.Queue.InitialDelay == 0 {
		c.Queue.InitialDelay = Duration(DefaultQueueDelay)
	}
	if c.Queue.MaxDelay == 0 {
		c.Queue.MaxDelay = Duration(DefaultQueueMaxDelay)
	}
	if c.Queue.StaleThreshold == 0 {
		c.Queue.StaleThreshold = Duration(DefaultStaleThreshold)
	}
	if c.Server.Port == nil {
		p := DefaultPort
		c.Server.Port = &p
	}
	if c.Server.ShutdownTimeout == 0 {
		c.Server.ShutdownTimeout = Duration(DefaultShutdownTimeout)
	}
	if c.Server.MaxBodyBytes == 0 {
		c.Server.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Server.ReadTimeout == 0 {
		c.Server.ReadTimeout = Duration(DefaultReadTimeout)
	}
	if c.Server.IdleTimeout == 0 {
		c.Server.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	if c.Server.RebindGrace == nil {
		g := Duration(DefaultRebindGrace)
		c.Server.RebindGrace = &g
	}
	authDefaults(&c.Server.Auth)
	if c.Logger.Level == "" {
		c.Logger.Level = "info"
	}
	if c.Logger.Format == "" {
		c.Logger.Format = "text"
	}
}
