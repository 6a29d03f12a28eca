import { useEffect, useState } from 'react';
import { fetchVersion } from './api.js';

// Shows which release of the backend answers: /api/version (its commit and the commit's time).
export default function VersionInfo() {
  const [state, setState] = useState({ status: 'loading' });

  useEffect(() => {
    const controller = new AbortController();
    fetchVersion({ signal: controller.signal })
      .then((version) => setState({ status: 'loaded', version }))
      .catch((error) => {
        if (!controller.signal.aborted) {
          setState({ status: 'error', message: error.message });
        }
      });
    return () => controller.abort();
  }, []);

  if (state.status === 'loading') {
    return <p role="status">Loading version…</p>;
  }
  if (state.status === 'error') {
    return (
      <p role="alert" className="error">
        Backend unavailable: {state.message}
      </p>
    );
  }
  const { commit, commit_time: commitTime } = state.version;
  return (
    <dl aria-label="Backend version">
      <dt>Commit</dt>
      <dd>{commit}</dd>
      {commitTime && (
        <>
          <dt>Committed</dt>
          <dd>{commitTime}</dd>
        </>
      )}
    </dl>
  );
}
