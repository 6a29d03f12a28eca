import { render, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import App from './App.jsx';

function stubFetch(status, body) {
  const fetchMock = vi.fn(async () => ({
    ok: status >= 200 && status < 300,
    status,
    json: async () => body,
  }));
  vi.stubGlobal('fetch', fetchMock);
  return fetchMock;
}

describe('App', () => {
  it('fetches /api/version and shows the backend build', async () => {
    const fetchMock = stubFetch(200, {
      commit: '0123abcd',
      commit_time: '2024-01-02T03:04:05Z',
    });
    render(<App />);

    expect(screen.getByRole('heading', { name: 'RecordSponge' })).toBeInTheDocument();
    expect(screen.getByRole('status')).toHaveTextContent('Loading version');
    expect(await screen.findByText('0123abcd')).toBeInTheDocument();
    expect(screen.getByText('Committed')).toBeInTheDocument();
    expect(screen.getByText('2024-01-02T03:04:05Z')).toBeInTheDocument();
    expect(fetchMock).toHaveBeenCalledWith('/api/version', expect.anything());
  });

  it('shows a dev backend without a commit time', async () => {
    stubFetch(200, { commit: 'dev' });
    render(<App />);

    expect(await screen.findByText('dev')).toBeInTheDocument();
    expect(screen.queryByText('Committed')).not.toBeInTheDocument();
  });

  it('reports a backend error', async () => {
    stubFetch(503, { status: 'error' });
    render(<App />);

    expect(await screen.findByRole('alert')).toHaveTextContent('/api/version answered 503');
  });
});
