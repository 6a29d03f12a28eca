import VersionInfo from './VersionInfo.jsx';

export default function App() {
  return (
    <main>
      <h1>RecordSponge</h1>
      <p>Helping people clear their criminal records in Oregon.</p>
      <section>
        <h2>Backend</h2>
        <VersionInfo />
      </section>
    </main>
  );
}
